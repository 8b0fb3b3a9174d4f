"""What every benchmark, harness and drill shares: servers, clients, load, faults, measures, tables, results."""
