"""What tests share: running the CLI (`cli`), paths (`paths`), a real browser on a report
(`browser`), an OpenAI-compatible test server (`openai_server`) and a loop report's data
(`report_data`). Test modules import from here, never from each other."""
