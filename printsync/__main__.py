from printsync.cli import main

main()
