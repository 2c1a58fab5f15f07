"""Settings API: the rig configuration, validated field by field and saved atomically."""

from __future__ import annotations

from flask import Blueprint, jsonify

from controller.rig.service import RigError
from controller.runtime import EDITABLE_FIELDS
from controller.web.helpers import FormError, json_body, runtime

bp = Blueprint("settings", __name__, url_prefix="/api/settings")

# What the Settings page edits; everything else in the file keeps its value.
EDITABLE = EDITABLE_FIELDS


@bp.get("")
def get_settings():  # noqa: ANN201
    """The rig configuration as the Settings page edits it (`config`, without where the secret
    lives), the file it is saved to (`path`) and the fields the page may change (`editable`).
    Each camera entry carries its TTL lines in `ttl`: `outputs` {start|strobe|barcode: GPIO line},
    `inputs` [{name, line, record}], `strobe_width_us` (empty: no TTL)."""
    rt = runtime()
    data = rt.config.to_dict()
    data.pop("secret_file", None)  # where the secret lives is not the page's business
    return jsonify({"config": data, "path": str(rt.config_path), "editable": list(EDITABLE)})


@bp.post("")
def save_settings():  # noqa: ANN201
    """Validate and save the editable fields (`editable` of GET); the others keep their values.
    A bad value is answered 400 with its `field` (`cameras[1].ttl.outputs.strobe`, ...), the
    message naming the camera, and nothing is written. TTL lines are checked by the Pi agent's own
    rules (lines 0..511, each line used once, strobe width 5 ms .. half the frame period at `fps`).
    The answer lists `changed`, `applied` (in effect now), `restart_for` (the simulated rig
    restarts, `job_id` follows it), `deploy_for` (a real rig: capture fields and `ttl` reach the
    Pis with Deploy) and `not_simulated` (saved for a real rig only: the simulated rig's TTL comes
    from `syncrig demo --ttl-out`)."""
    data = json_body()
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        from controller.rig.config import ConfigError

        raise ConfigError(f"{unknown[0]}: not a setting this page can change")
    return jsonify(runtime().save_settings(data))


@bp.post("/deploy")
def deploy():  # noqa: ANN201
    """ "Deploy settings": install the agent on every Pi (exactly install.sh's code) as a job."""
    data = json_body()
    if data.get("confirm") is not True:
        raise FormError('deploy restarts the agents: confirm with {"confirm": true}', "confirm")
    cameras = data.get("cameras")
    names_ok = isinstance(cameras, list) and all(isinstance(c, str) for c in cameras)
    if cameras is not None and not names_ok:
        raise FormError("cameras: must be a list of camera names", "cameras")
    return jsonify({"job_id": runtime().start_deploy(cameras)})


@bp.get("/hostkeys")
def pending_host_keys():  # noqa: ANN201
    return jsonify({"pending": runtime().host_keys.pending()})


@bp.post("/hostkeys")
def confirm_host_key():  # noqa: ANN201
    """The user compared the fingerprint shown with the Pi's and trusts it: remember that key."""
    data = json_body()
    camera, fingerprint = data.get("camera"), data.get("fingerprint")
    if not isinstance(camera, str) or not isinstance(fingerprint, str):
        raise FormError("camera and fingerprint (strings) are required")
    rt = runtime()
    from controller.deploy import DeployError

    try:
        return jsonify(rt.host_keys.accept(camera, fingerprint, rt.deploy_options.known_hosts_path))
    except DeployError as exc:
        raise RigError(str(exc), 409) from None
