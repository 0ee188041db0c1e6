"""Weight files, key normalisation, the Hub and TensorFlow checkpoints."""
