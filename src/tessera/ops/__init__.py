"""Operations: metrics, structured logs, graph-health alerts, backups and store format versions."""
