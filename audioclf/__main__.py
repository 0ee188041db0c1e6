from audioclf.cli import main

main()
