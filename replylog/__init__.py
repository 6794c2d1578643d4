"""The reply log: which mailbox an SMS reply belongs to.

* ``replylog.links``: the link value (sender mailbox <-> number, gateway,
  the original Message-ID, time) and what a submitted message makes of it;
* ``replylog.origin``: whether a mail's sender was authenticated, from what
  the MTA says (``replylog.record = "authenticated"``);
* ``replylog.route``: the routing decision for one incoming SMS (``#email#``
  tag, one live link, several, none), pure;
* ``replylog.store``: the ``reply_link`` table in the queue's database.

Nothing here sends anything: the inbound pipeline (``mailsms.inbound``) acts
on the decisions.
"""
