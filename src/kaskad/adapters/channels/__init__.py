"""Channel providers: adapters to gateways, each with its status mapping table."""
