"""Outbound notification channels handed to the NotificationAgent (webhook)."""
