"""reclift: attribution, learning and ranking for Shopify product recommendations."""
