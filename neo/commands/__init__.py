"""Command-line verbs beside LightningCLI's ``fit``/``validate``/``test``/``predict``."""
