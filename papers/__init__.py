"""Paper subpackages; each exposes PAPER and its optimizer classes."""
