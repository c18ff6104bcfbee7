"""Model backends for LightEval: an OpenAI-compatible endpoint backend and the disk cache they share."""
