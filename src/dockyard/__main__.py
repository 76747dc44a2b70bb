from dockyard.cli.main import main

main()
