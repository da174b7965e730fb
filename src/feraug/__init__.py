"""feraug: GAN-based data augmentation for facial expression recognition, measured fairly."""

__version__ = "0.1.0"
