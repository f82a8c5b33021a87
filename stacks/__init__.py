"""CDK code of the Gemma 4 batch app: settings, one stack per region and its constructs."""
