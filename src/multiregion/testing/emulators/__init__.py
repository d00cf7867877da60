"""Launchers for the local emulators the adapter tests use (moto, Azurite, cosmosdb-server,
fake-gcs-server, the Firestore emulator), usable from any pytest suite."""
