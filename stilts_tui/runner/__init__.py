"""The runner: fills every slot (GPU or CPU) with warm workers, outlives the terminal, and
leaves exactly one outcome per run in the store whatever crashes."""
