from courtyard.cli.main import main

main()
