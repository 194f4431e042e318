// Uploads a file to a Switchboard gateway with tus-js-client, the
// reference tus client, as media and gateway tests run it under Node:
//
//   node upload.js ENDPOINT TOKEN TICKET_ID FILE [CHUNK_SIZE]
//
// It retries and resumes by itself when the connection drops (the test
// cuts it), and prints one JSON line: the upload URL, the stored photo's
// ID, and the progress events seen.
'use strict'
const { Upload } = require('tus-js-client')
const fs = require('node:fs')

const [endpoint, token, ticketId, file, chunk] = process.argv.slice(2)
const data = fs.readFileSync(file)
let lastProgress = 0
let progressEvents = 0
let errors = 0

const upload = new Upload(data, {
  endpoint,
  // Short waits: the test's proxy lets every later connection through.
  retryDelays: [100, 200, 400, 800, 1600, 3200],
  headers: { Authorization: 'Bearer ' + token },
  metadata: { ticket_id: ticketId, filename: '../../IMG\u0000_0042.jpg', filetype: 'text/html' },
  chunkSize: chunk ? Number(chunk) : Infinity,
  uploadSize: data.length,
  onProgress (sent) {
    progressEvents++
    lastProgress = sent
  },
  onShouldRetry (err, retryAttempt, options) {
    errors++
    const status = err.originalResponse ? err.originalResponse.getStatus() : 0
    return status === 0 || status >= 500 || status === 423 || status === 409
  },
  onSuccess (payload) {
    const res = payload && payload.lastResponse
    console.log(JSON.stringify({
      url: upload.url,
      photo_id: res ? res.getHeader('Switchboard-Photo-Id') : '',
      progress: lastProgress,
      progress_events: progressEvents,
      retries: errors
    }))
  },
  onError (err) {
    console.error(String(err))
    process.exit(1)
  }
})
upload.start()
