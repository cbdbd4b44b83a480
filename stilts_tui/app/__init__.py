"""The Textual app (`stilts tui`): plan, launch, watch and read a study. It reads the store, the
runner's state and the run event logs, and starts or stops runners through runner.control; it
never trains."""
