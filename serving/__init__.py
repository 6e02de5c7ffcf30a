"""Running the clearmark stack locally: TorchServe with the model archive, and the gateway."""
