"""Settings API: the rig configuration, validated field by field and saved atomically."""

from __future__ import annotations

from flask import Blueprint, jsonify

from .helpers import json_body, runtime

bp = Blueprint("settings", __name__, url_prefix="/api/settings")

# What the Settings page edits; everything else in the file keeps its value.
EDITABLE = (
    "cameras",
    "fps",
    "width",
    "height",
    "bitrate",
    "keyframe_interval_s",
    "sessions_root",
    "pi_data_dir",
    "pi_install_dir",
)


@bp.get("")
def get_settings():  # noqa: ANN201
    rt = runtime()
    data = rt.config.to_dict()
    data.pop("secret_file", None)  # where the secret lives is not the page's business
    return jsonify({"config": data, "path": str(rt.config_path), "editable": list(EDITABLE)})


@bp.post("")
def save_settings():  # noqa: ANN201
    data = json_body()
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        from ..rig_config import ConfigError

        raise ConfigError(f"{unknown[0]}: not a setting this page can change")
    return jsonify(runtime().save_settings(data))
