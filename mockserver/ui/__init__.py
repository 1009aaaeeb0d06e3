"""The dashboard at `/__admin/ui` (the `ui` extra: Jinja2): see `mockserver.ui.dashboard`."""
