"""``make bench``: model-only and end-to-end speed, batching and worker memory in one JSON."""
