"""Limits that hold across every gateway replica: rate, concurrency, daily images, daily spend, backend caps."""
