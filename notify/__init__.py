"""Notifications, pure: what is sent on which event (the desk's ``notifications.yaml``), the
templates in zh-CN and en, Standard Webhooks signing and the retry schedule.

Nothing here touches a database or the network: the outbox that stores and delivers what
these modules decide is ``outbox/`` (above ``cases``).
"""
