"""Model code for Cascade's backends: plain Python, no Ray imports (the deployments wrap it)."""
