"""Load test of the running service: a stepped upload-rate schedule, locust, and its analysis."""
