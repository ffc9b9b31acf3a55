"""AICMO Actors: an agency back office as one asyncio actor system."""
