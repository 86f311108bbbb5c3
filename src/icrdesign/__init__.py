"""icrdesign: inverse design of inorganic crystals (ICR + property-structured VAE)."""

__version__ = "0.1.0"
