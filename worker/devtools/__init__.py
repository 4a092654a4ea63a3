"""Development tools: the embedded server, the data generator, the demo and the Cal.com simulator."""
