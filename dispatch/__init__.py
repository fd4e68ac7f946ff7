"""dispatch: outbound call campaigns for Pinecall voice agents."""
