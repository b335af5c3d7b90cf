"""The Docker-free local stack: moto server, the template's routes and queues, the functions in processes."""
