"""Wire-level fakes of cloud APIs that have no emulator (Traffic Manager, Cloud DNS, Compute
health checks). They speak the REST subset the adapters use and behave as the services document,
including probing endpoints, so users can test their own code against them too."""
