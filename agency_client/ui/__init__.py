"""The practitioners' web page (``agency ui``): a local web app over the agency client.

The server holds the agency's unlocked keys, so the page shows decrypted content while
the relay still sees only sealed envelopes. Start with :func:`running_ui` (or
:func:`create_ui_app` with an open :class:`~agency_client.client.AgencyClient`).
"""

from __future__ import annotations

from agency_client.ui.app import RunningUI, create_ui_app, running_ui
from agency_client.ui.settings import UISettings
from agency_client.ui.users import User, UserStore

__all__ = ["RunningUI", "UISettings", "User", "UserStore", "create_ui_app", "running_ui"]
