"""Bundling: route:review branches into one pull request, the train schedule, the local fallback."""
