from captioner.registry import Registry

ENCODERS: Registry = Registry("encoder")
