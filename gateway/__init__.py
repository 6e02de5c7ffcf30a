"""The public edge of clearmark: upload page, REST API and the forwarder to TorchServe."""
