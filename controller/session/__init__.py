"""Session directories on the desktop: where everything lives (SessionLayout, from the shared
contract), whether a session is synced and with which cameras, creating them (create) and
listing, checking and freeing them (store)."""

from controller.session.synced import NotSynced, synced_cameras
from syncrig_agent.contract.layout import SessionLayout

__all__ = ["NotSynced", "SessionLayout", "synced_cameras"]
