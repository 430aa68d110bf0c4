"""Ray Serve deployments: the gateway, one file per backend, and the app builder (`deployments.app:build_app`)."""
