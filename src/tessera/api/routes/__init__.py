"""One router per resource family; :func:`tessera.api.app.create_app` mounts them all."""
