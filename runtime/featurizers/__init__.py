"""Featurizers shared by training and the runtime (audio, vision, text)."""
