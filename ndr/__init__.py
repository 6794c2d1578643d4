"""RFC 3464 delivery status notifications and the map of gateway errors to RFC 3463 codes.

``ndr`` composes; it never decides when a report is due (the scheduler does)
and never sends (mailsms's mail-out does).
"""

from ndr.codes import Verdict
from ndr.report import ACTIONS, Action, OriginalMail, RecipientStatus, Reporting, compose

__all__ = ["ACTIONS", "Action", "OriginalMail", "RecipientStatus", "Reporting", "Verdict", "compose"]
