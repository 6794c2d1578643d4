"""replylog."""
