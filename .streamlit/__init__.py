"""scaleplan.streamlit_config: the Streamlit config.toml that `scaleplan serve` applies, shipped as package data."""
