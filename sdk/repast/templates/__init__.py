"""Project templates for `repast init`."""
