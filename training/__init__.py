"""clearmark training: photos, watermark synthesis, the model, training and evaluation."""
