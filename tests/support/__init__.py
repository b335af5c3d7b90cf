"""Test helpers shared by the integration suites and the benchmarks: the emulated AWS, Shopify-signed requests."""
