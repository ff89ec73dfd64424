"""Leva's hub side: authenticator, spawner, lesson delivery, roster and the ``leva`` command."""
