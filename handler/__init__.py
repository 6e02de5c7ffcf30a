"""TorchServe handler for clearmark and the image codecs it uses."""
