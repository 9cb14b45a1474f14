"""What every floor stands on: the one error tree, field types with their messages, the records narrator
writes (manifest, report, plan), audio files and ffmpeg, the output folder and the kinds of file it holds.
"""
