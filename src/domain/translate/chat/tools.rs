//! `tools` and `tool_choice` → Gemini function declarations (parameters in the model's schema
//! dialect) and `functionCallingConfig`.

use super::request::SchemaDialect;
use crate::domain::error::GatewayError;
use crate::domain::gemini;
use crate::domain::openai::{self, AllowedToolsMode, ToolChoice, ToolChoiceMode};
use crate::domain::translate::names;
use crate::domain::translate::schema;

pub(super) fn tool_settings(
    tools: &[openai::Tool],
    choice: Option<&ToolChoice>,
    dialect: SchemaDialect,
) -> Result<(Vec<gemini::Tool>, Option<gemini::ToolConfig>), GatewayError> {
    let declarations = tools
        .iter()
        .enumerate()
        .map(|(i, tool)| function_declaration(&tool.function, i, dialect))
        .collect::<Result<Vec<_>, _>>()?;
    let tool_config = match choice {
        None => None,
        Some(choice) => function_calling_config(choice, tools)?.map(|config| gemini::ToolConfig {
            function_calling_config: Some(config),
            retrieval_config: None,
        }),
    };
    let tools = if declarations.is_empty() {
        Vec::new()
    } else {
        vec![gemini::Tool {
            function_declarations: declarations,
            ..gemini::Tool::default()
        }]
    };
    Ok((tools, tool_config))
}

fn function_declaration(
    function: &openai::FunctionDefinition,
    i: usize,
    dialect: SchemaDialect,
) -> Result<gemini::FunctionDeclaration, GatewayError> {
    if function.name.is_empty() {
        let param = format!("tools[{i}].function.name");
        return Err(GatewayError::invalid_param(
            format!("{param}: must be a non-empty string"),
            param,
        ));
    }
    let param = format!("tools[{i}].function.parameters");
    let invalid = |why: String| GatewayError::invalid_param(format!("{param}: {why}"), &param);
    let mut declaration = gemini::FunctionDeclaration {
        name: names::to_gemini(&function.name).into_owned(),
        description: function.description.clone(),
        ..gemini::FunctionDeclaration::default()
    };
    let Some(parameters) = function.parameters.as_ref().filter(|p| !p.is_null()) else {
        return Ok(declaration);
    };
    match dialect {
        SchemaDialect::JsonSchema => {
            declaration.parameters_json_schema =
                Some(schema::function_parameters_json_schema(parameters).map_err(invalid)?);
        }
        SchemaDialect::OpenApi => {
            declaration.parameters =
                schema::function_parameters_openapi(parameters).map_err(invalid)?;
        }
    }
    Ok(declaration)
}

/// `auto`/`none`/`required`/named → AUTO/NONE/ANY/ANY + `allowedFunctionNames`.
fn function_calling_config(
    choice: &ToolChoice,
    tools: &[openai::Tool],
) -> Result<Option<gemini::FunctionCallingConfig>, GatewayError> {
    use gemini::FunctionCallingMode as Mode;
    let (mode, names) = match choice {
        ToolChoice::Mode(ToolChoiceMode::None) => (Mode::None, Vec::new()),
        ToolChoice::Mode(ToolChoiceMode::Auto) => (Mode::Auto, Vec::new()),
        ToolChoice::Mode(ToolChoiceMode::Required) => (Mode::Any, Vec::new()),
        ToolChoice::Named(named) => (Mode::Any, vec![named.function.name.as_str()]),
        ToolChoice::AllowedTools(allowed) => {
            let names = allowed
                .allowed_tools
                .tools
                .iter()
                .map(|t| t.function.name.as_str())
                .collect();
            // VALIDATED is Gemini's "call one of these, or answer in text".
            match allowed.allowed_tools.mode {
                AllowedToolsMode::Auto => (Mode::Validated, names),
                AllowedToolsMode::Required => (Mode::Any, names),
            }
        }
    };
    if tools.is_empty() {
        return match mode {
            Mode::None | Mode::Auto => Ok(None),
            _ => Err(GatewayError::invalid_param(
                "tool_choice requires tools to be specified",
                "tool_choice",
            )),
        };
    }
    if let Some(unknown) = names
        .iter()
        .find(|name| !tools.iter().any(|t| t.function.name == **name))
    {
        return Err(GatewayError::invalid_param(
            format!("tool_choice names function `{unknown}`, which is not in tools"),
            "tool_choice",
        ));
    }
    Ok(Some(gemini::FunctionCallingConfig {
        mode: Some(mode),
        allowed_function_names: names
            .into_iter()
            .map(|n| names::to_gemini(n).into_owned())
            .collect(),
    }))
}
