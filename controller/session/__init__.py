"""Session directories on the desktop: where everything lives (SessionLayout, from the shared
contract), whether a session is synced and with which cameras (synced), creating them (create) and
listing, checking and freeing them (store).

Only the layout is re-exported: the submodules stand on the pipeline's file readers, which in turn
create sessions, so importing them here would make a circle through this package."""

from syncrig_agent.contract.layout import SessionLayout

__all__ = ["SessionLayout"]
