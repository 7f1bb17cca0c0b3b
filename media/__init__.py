"""Photos and video profiles: uploads, storage, transcoding jobs and range serving."""
